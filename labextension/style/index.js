import './base.css';
import './cellbadges.css';
